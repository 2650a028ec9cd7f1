//! What happens on a panic: the reject relay is switched off at the register level, then the chip
//! resets and comes back up showing "agent offline" until the agent speaks again.
//!
//! Design: a halted controller must never leave the reject gate energised, so this does not rely on
//! any driver state — it writes GPIOB's bit-reset register directly for the relay pin. The independent
//! watchdog (see the binary) covers the other failure, a main loop that stops running.

use core::panic::PanicInfo;

/// The relay's pin number on GPIOB (PB12), shared with the binary's pin setup.
pub const RELAY_PIN: usize = 12;

/// Switches the relay off without any driver.
pub fn relay_off_raw() {
    embassy_stm32::pac::GPIOB
        .bsrr()
        .write(|w| w.set_br(RELAY_PIN, true));
}

#[panic_handler]
fn panic(_info: &PanicInfo) -> ! {
    relay_off_raw();
    cortex_m::peripheral::SCB::sys_reset()
}
