//! Clock tree: the black pill's 25 MHz crystal through the PLL to 96 MHz (AHB 96, APB2 96, APB1 48),
//! which also gives the 48 MHz USB clock should the link ever move to USB.

use embassy_stm32::rcc::*;
use embassy_stm32::time::Hertz;

pub fn config() -> embassy_stm32::Config {
    let mut c = embassy_stm32::Config::default();
    c.rcc.hse = Some(Hse {
        freq: Hertz(25_000_000),
        mode: HseMode::Oscillator,
    });
    c.rcc.pll_src = PllSource::HSE;
    c.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV25,
        mul: PllMul::MUL192,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV4),
        divr: None,
    });
    c.rcc.ahb_pre = AHBPrescaler::DIV1;
    c.rcc.apb1_pre = APBPrescaler::DIV2;
    c.rcc.apb2_pre = APBPrescaler::DIV1;
    c.rcc.sys = Sysclk::PLL1_P;
    c
}
