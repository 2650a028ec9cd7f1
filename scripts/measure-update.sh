#!/usr/bin/env bash
# Issue 11 measurement: publish → active time, frames dropped around the swap at 30 fps (camera-like
# drop_when_busy), verdict latency around the swap, RSS. Release binary $BIN (run from the checkout),
# loopback only (ports 18831 broker, 18832 HTTP, 19465 metrics); needs mosquitto and mosquitto-clients.
set -u
BIN=${BIN:-target/release/hallmark}; REPO=$(cd "$(dirname "$0")/.." && pwd); BIN=$(realpath "$BIN"); D=$(mktemp -d); chmod 777 "$D"
printf 'listener 18831 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' > $D/m.conf
/usr/sbin/mosquitto -c $D/m.conf > $D/broker.log 2>&1 & BROKER=$!
mkdir -p $D/files $D/keys && (cd $D/files && python3 -m http.server 18832 --bind 127.0.0.1 > $D/http.log 2>&1 &)
sleep 1
$BIN keygen --out $D/keys >/dev/null
# The next revision: the shipped bundle's files (model, variants, pictures) with revision + 1.
NEXT=$(python3 -c "import json; print(json.load(open('$REPO/models/northwind/manifest.json'))['revision'] + 1)")
mkdir -p $D/b8 && cp -r $REPO/models/northwind/. $D/b8/ && python3 -c "
import json; m=json.load(open('$REPO/models/northwind/manifest.json')); m['revision']=$NEXT; json.dump(m, open('$D/b8/manifest.json','w'), indent=2)"
mosquitto_sub -p 18831 -t 'hallmark/things/m11/#' -F '%U %t %p' > $D/sub.log 2>&1 & SUB=$!
cd $REPO; env HALLMARK_AGENT_STATE_DIR=$D/state HALLMARK_MQTT_ENABLED=true HALLMARK_MQTT_HOST=127.0.0.1 HALLMARK_MQTT_PORT=18831 \
 HALLMARK_AGENT_THING=m11 HALLMARK_MQTT_TELEMETRY_INTERVAL_S=0 HALLMARK_HTTP_LISTEN=127.0.0.1:19465 HALLMARK_SOURCE_LOOP=true \
 HALLMARK_SOURCE_FPS=30 HALLMARK_SOURCE_DROP_WHEN_BUSY=true HALLMARK_EVIDENCE_ENABLED=false \
 HALLMARK_TRUST_PUBLIC_KEYS=$REPO/models/keys/demo-publisher.pub.pem,$D/keys/publisher.pub.pem \
 $BIN run > $D/agent.out 2> $D/agent.err & AGENT=$!
sleep 8
echo "rss before: $(grep VmRSS /proc/$AGENT/status)"
echo "dropped before: $(curl -s localhost:19465/metrics | grep '^hallmark_frames_dropped_total')"
T0=$(date +%s.%N)
$BIN publish $D/b8 --key $D/keys/publisher.key.pem --url-base http://127.0.0.1:18832 --out $D/files --broker 127.0.0.1:18831 >/dev/null
for i in $(seq 1 100); do grep -q '"state":"active"' $D/sub.log && break; sleep 0.1; done
T1=$(grep '"state":"active"' $D/sub.log | head -1 | cut -d' ' -f1)
python3 -c "print('publish -> active (status received): %.0f ms' % ((float('$T1')-float('$T0'))*1000))"
sleep 5
echo "dropped after: $(curl -s localhost:19465/metrics | grep '^hallmark_frames_dropped_total')"
echo "rss after: $(grep VmRSS /proc/$AGENT/status)"
kill -TERM $AGENT; wait $AGENT; kill $SUB $BROKER; pkill -f "http.server 18832"
grep '"state"' $D/sub.log | cut -c1-220
python3 - "$D/agent.out" "$NEXT" <<'PY'
import json, sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
new=int(sys.argv[2])
i=next(i for i,e in enumerate(ev) if e['model_revision']==new)
print(f'verdict latency_ms, 10 before the first revision-{new} verdict:', [round(e['latency_ms']) for e in ev[max(0,i-10):i]])
print('and 10 from it:', [round(e['latency_ms']) for e in ev[i:i+10]])
PY
