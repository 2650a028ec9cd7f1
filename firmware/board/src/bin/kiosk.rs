//! The kiosk and conveyor controller firmware: set up the pins, start the link, button and controller
//! tasks (and, on a conveyor, the belt encoder), then draw whatever screen the controller asks for.
//!
//! Conveyor or kiosk is read once at boot from a strap: PB13 tied to GND makes a conveyor controller,
//! whose reject gate counts the belt encoder's pulses (channel A on PB6, B on PB7: a quadrature
//! encoder's direction; a single-channel one leaves PB7 open, counting up).
//!
//! Two priorities. Design: everything that can move the reject relay — the link receiver, the button,
//! the controller state machine and its outputs — runs on an interrupt executor (USART2's unused
//! interrupt, priority 6) that preempts thread mode. The screen is drawn in thread mode (this `main`),
//! one 24-row band at a time with blocking SPI, yielding between bands. So a reject that arrives in
//! the middle of a ~100 ms full redraw switches the relay within microseconds, not after the redraw;
//! and a screen that changes mid-redraw restarts the drawing from the top rather than finishing a
//! stale picture. (mipidsi 0.10's display interface is blocking only, so no DMA/async SPI here.)
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use embassy_executor::{InterruptExecutor, Spawner};

use embassy_futures::select::{select3, Either3};
use embassy_stm32::exti::{self, ExtiInput};
use embassy_stm32::gpio::{Level, Output, Pull, Speed};
use embassy_stm32::interrupt::{InterruptExt, Priority};
use embassy_stm32::mode::{Async, Blocking};
use embassy_stm32::spi::{self, Spi};
use embassy_stm32::time::Hertz;
use embassy_stm32::usart::{self, BufferedUart, BufferedUartRx, BufferedUartTx};
use embassy_stm32::wdg::IndependentWatchdog;
use embassy_stm32::{bind_interrupts, interrupt, peripherals};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Delay, Instant, Timer};
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, RgbColor};
use embedded_hal_bus::spi::ExclusiveDevice;
use embedded_io_async::Write;
use hallmark_board::inputs::{Input, Inputs};
use hallmark_board::{clocks, link_rx, BAND_ROWS};
use hallmark_link::{encode, MAX_WIRE_LEN};
use hallmark_ui::{
    Actuator, BandPainter, Config, Controller, CountSource, Effects, GateConfig, Screen, HEIGHT,
    WIDTH,
};
use mipidsi::interface::SpiInterface;
use mipidsi::models::ST7789;
use mipidsi::options::{ColorInversion, Orientation, Rotation};
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    USART1 => usart::BufferedInterruptHandler<peripherals::USART1>;
    EXTI0 => exti::InterruptHandler<interrupt::typelevel::EXTI0>;
    EXTI9_5 => exti::InterruptHandler<interrupt::typelevel::EXTI9_5>;
});

/// The belt encoder's count (wrapping; the controller task widens it) and a wake-up for the controller.
static BELT: AtomicU32 = AtomicU32::new(0);
static BELT_MOVED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

static INPUTS: Inputs = Inputs::new();
/// The screen the controller wants; the drawing loop takes the newest.
static SCREEN: Signal<CriticalSectionRawMutex, Screen> = Signal::new();
/// Runs the link, button and controller tasks above thread mode.
static EXECUTOR_HIGH: InterruptExecutor = InterruptExecutor::new();
static UART_TX: StaticCell<[u8; 256]> = StaticCell::new();
static UART_RX: StaticCell<[u8; 256]> = StaticCell::new();
static SPI_BUF: StaticCell<[u8; 512]> = StaticCell::new();
static BAND: StaticCell<[Rgb565; WIDTH as usize * BAND_ROWS]> = StaticCell::new();

#[embassy_executor::task]
async fn link_task(rx: BufferedUartRx<'static>) {
    link_rx::run(rx, &INPUTS).await
}

#[embassy_executor::task]
async fn button_task(mut button: ExtiInput<'static, Async>) {
    loop {
        button.wait_for_falling_edge().await;
        INPUTS.send(Input::Button).await;
        // The controller debounces presses; this only stops one press from flooding the tray.
        Timer::after_millis(50).await;
        button.wait_for_high().await;
    }
}

/// Counts the encoder: each rising edge of channel A is one count, up when B is low (a single-channel
/// encoder leaves B pulled low), down when high. Design: it only counts and wakes the controller, which
/// hands every count to the gate in order, so a pack fires at its exact count even if the controller
/// wakes a little late.
#[embassy_executor::task]
async fn encoder_task(mut a: ExtiInput<'static, Async>, b: embassy_stm32::gpio::Input<'static>) {
    loop {
        a.wait_for_rising_edge().await;
        if b.is_low() {
            BELT.fetch_add(1, Ordering::Relaxed);
        } else {
            BELT.fetch_sub(1, Ordering::Relaxed);
        }
        BELT_MOVED.signal(());
    }
}

#[interrupt]
unsafe fn USART2() {
    // Safety: USART2 is unused on this board; this handler exists only to poll the high-priority
    // executor, which `main` starts before anything can pend the interrupt.
    unsafe { EXECUTOR_HIGH.on_interrupt() }
}

fn now_ms() -> u64 {
    Instant::now().as_millis()
}

/// The controller state machine: waits for a message, a press or its next deadline, then carries out
/// the effects. Design: the watchdog is petted here, so a stuck controller (and with it the relay
/// logic) resets the chip, which boots with the relay off.
#[embassy_executor::task]
async fn controller_task(
    mut out: Outputs,
    mut watchdog: IndependentWatchdog<'static, peripherals::IWDG>,
    conveyor: bool,
) {
    watchdog.unleash();
    let cfg = Config {
        gate: conveyor.then_some(GateConfig {
            counts: CountSource::Encoder,
            report_every_ms: 20,
        }),
        ..Config::default()
    };
    let (mut ctrl, fx) = Controller::new(cfg, env!("CARGO_PKG_VERSION"), now_ms());
    out.apply(&ctrl, fx).await;
    // The count so far, widened from the encoder's wrapping 32 bits.
    let (mut counted, mut seen) = (0u64, 0u32);
    loop {
        let deadline = Instant::from_millis(ctrl.next_deadline());
        match select3(INPUTS.receive(), Timer::at(deadline), BELT_MOVED.wait()).await {
            Either3::First(Input::Message(msg)) => {
                let fx = ctrl.on_message(now_ms(), msg);
                out.apply(&ctrl, fx).await;
            }
            Either3::First(Input::Button) => {
                let fx = ctrl.on_button(now_ms());
                out.apply(&ctrl, fx).await;
            }
            Either3::Second(()) => {}
            Either3::Third(()) => {
                let now = BELT.load(Ordering::Relaxed);
                let moved = now.wrapping_sub(seen) as i32;
                seen = now;
                // Every count in order, as the gate must see them; backwards, the count just drops.
                let target = counted.saturating_add_signed(i64::from(moved));
                while counted < target {
                    counted += 1;
                    let fx = ctrl.on_count(now_ms(), counted);
                    out.apply(&ctrl, fx).await;
                }
                if target < counted {
                    counted = target;
                    let fx = ctrl.on_count(now_ms(), counted);
                    out.apply(&ctrl, fx).await;
                }
            }
        }
        let fx = ctrl.on_tick(now_ms());
        out.apply(&ctrl, fx).await;
        watchdog.pet();
    }
}

#[embassy_executor::main]
async fn main(_spawner: Spawner) {
    let p = embassy_stm32::init(clocks::config());

    // Safe state first: relay off, backlight on. (PB12 is also what the panic handler switches off.)
    let relay = Output::new(p.PB12, Level::Low, Speed::Low);
    let _backlight = Output::new(p.PB10, Level::High, Speed::Low);

    // The link. Design: a fixed configuration that cannot be rejected (115200 8N1 on USART1), so
    // failing here means broken hardware; halting leaves the relay off.
    let mut uart_cfg = usart::Config::default();
    uart_cfg.baudrate = 115_200;
    let Ok(uart) = BufferedUart::new(
        p.USART1,
        p.PA10,
        p.PA9,
        UART_TX.init([0; 256]),
        UART_RX.init([0; 256]),
        Irqs,
        uart_cfg,
    ) else {
        halt()
    };
    let (tx, rx) = uart.split();

    // Design: the independent watchdog resets the chip (relay off at boot) if the controller loop
    // ever stops. The loop wakes at least once per heartbeat interval (1 s); 3 s leaves room.
    let watchdog = IndependentWatchdog::new(p.IWDG, 3_000_000);

    // The relay's side, at the higher priority. It runs from here on, also while the panel
    // initialises below; the first screen waits in SCREEN until the drawing loop starts.
    interrupt::USART2.set_priority(Priority::P6);
    let high = EXECUTOR_HIGH.start(interrupt::USART2);
    high.spawn(link_task(rx).unwrap_or_else(|_| halt()));
    high.spawn(
        button_task(ExtiInput::new(p.PA0, p.EXTI0, Pull::Up, Irqs)).unwrap_or_else(|_| halt()),
    );
    // The strap: PB13 to GND makes a conveyor controller, with the belt encoder on PB6 (A) / PB7 (B).
    let conveyor = embassy_stm32::gpio::Input::new(p.PB13, Pull::Up).is_low();
    if conveyor {
        let a = ExtiInput::new(p.PB6, p.EXTI6, Pull::Down, Irqs);
        let b = embassy_stm32::gpio::Input::new(p.PB7, Pull::Down);
        high.spawn(encoder_task(a, b).unwrap_or_else(|_| halt()));
    }
    high.spawn(
        controller_task(Outputs { relay, tx }, watchdog, conveyor).unwrap_or_else(|_| halt()),
    );

    // The panel: ST7789 240×320 turned to landscape 320×240, SPI at 24 MHz.
    let mut spi_cfg = spi::Config::default();
    spi_cfg.frequency = Hertz(24_000_000);
    let spi: Spi<'static, Blocking, _> = Spi::new_blocking_txonly(p.SPI1, p.PA5, p.PA7, spi_cfg);
    // Infallible: a GPIO output cannot fail on this chip.
    let Ok(spi) =
        ExclusiveDevice::new_no_delay(spi, Output::new(p.PA4, Level::High, Speed::VeryHigh));
    let di = SpiInterface::new(
        spi,
        Output::new(p.PB0, Level::Low, Speed::VeryHigh),
        SPI_BUF.init([0; 512]),
    );
    let Ok(panel) = mipidsi::Builder::new(ST7789, di)
        .display_size(240, 320)
        .orientation(Orientation::new().rotate(Rotation::Deg90))
        .invert_colors(ColorInversion::Inverted)
        .reset_pin(Output::new(p.PB1, Level::High, Speed::Low))
        .init(&mut Delay)
    else {
        halt()
    };
    let band = BAND.init([Rgb565::BLACK; WIDTH as usize * BAND_ROWS]);
    draw_loop(panel, band).await
}

/// Draws the newest screen from SCREEN, one band per turn, yielding in between.
async fn draw_loop<P>(mut panel: P, band: &'static mut [Rgb565]) -> !
where
    P: DrawTarget<Color = Rgb565> + OriginDimensions,
{
    let mut painter = BandPainter::new(WIDTH, HEIGHT);
    loop {
        if !painter.is_busy() {
            painter.start(SCREEN.wait().await);
        } else if let Some(newer) = SCREEN.try_take() {
            painter.start(newer);
        }
        if let Some(b) = painter.next_band(band) {
            // A failed SPI transfer leaves a stale band; the next change redraws everything.
            let _ = panel.fill_contiguous(&b.area, b.pixels.iter().copied());
        }
        // Let the other thread-mode work run between bands (the relay's side preempts anyway).
        embassy_futures::yield_now().await;
    }
}

/// Where the controller's decisions land: the relay pin, the UART, and the screen for the drawing
/// loop.
struct Outputs {
    relay: Output<'static>,
    tx: BufferedUartTx<'static>,
}

impl Outputs {
    /// Carries out one set of effects: actuator first (it is time-critical), then the reply, then
    /// hands the screen to the drawing loop (which never holds this task up).
    async fn apply(&mut self, ctrl: &Controller, fx: Effects) {
        match fx.actuator {
            Some(Actuator::On) => self.relay.set_high(),
            Some(Actuator::Off) => self.relay.set_low(),
            None => {}
        }
        for msg in &fx.send {
            let mut frame = [0u8; MAX_WIRE_LEN];
            if let Ok(n) = encode(msg, &mut frame) {
                // The UART drains at line rate with no flow control, so this cannot stall for long.
                let _ = self.tx.write_all(&frame[..n]).await;
            }
        }
        if fx.redraw {
            SCREEN.signal(ctrl.screen().clone());
        }
    }
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
