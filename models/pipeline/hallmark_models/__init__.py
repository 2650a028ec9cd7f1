"""Hallmark's model pipeline: synthetic brand data, YOLOv5 training, export, evaluation and signed bundles.

Modules, in the order the pipeline uses them:
- `gs1`       GS1 numbers: check digits, GTINs, EAN-13 bar patterns (pure).
- `brands`    the brands, their products and each counterfeit's flaws (pure data).
- `artwork`   renders a class's packaging artwork (genuine or counterfeit) as a PIL image.
- `textures`  procedural backgrounds: shelves, conveyor belts, counters, walls, distractor packs.
- `scenes`    composes artwork into photographed-looking scenes with YOLO labels.
- `generate`  CLI: writes the dataset splits, the reference artwork and the sample scenes.
- `train`     SageMaker-style training entry point (wraps the yolov5 package).
- `export`    ONNX export with a static 1x3xHxW input.
- `evaluate`  mAP50 and per-item verdict accuracy on a split; picks thresholds on validation.
- `bundle`    manifest, digest and Ed25519 signature; key generation.
"""
