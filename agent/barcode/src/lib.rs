//! GS1 barcodes for Hallmark (work in progress).
