//! A polled driver for UART0 of the lm3s6965 (an Arm PL011): no
//! interrupts, no DMA. QEMU does not pace the line, and holds bytes back
//! while the receive FIFO is full, so nothing is lost by polling.

use core::ptr;

/// UART0's registers.
const BASE: usize = 0x4000_C000;
const DR: usize = BASE;
const FR: usize = BASE + 0x18;
const LCR_H: usize = BASE + 0x2C;
const CR: usize = BASE + 0x30;

/// FR: receive FIFO empty, transmit FIFO full.
const RXFE: u32 = 1 << 4;
const TXFF: u32 = 1 << 5;
/// LCR_H: 8 data bits, FIFOs on.
const WLEN_8_FEN: u32 = 0b11 << 5 | 1 << 4;
/// CR: enable, transmit, receive.
const UARTEN_TXE_RXE: u32 = 1 | 1 << 8 | 1 << 9;

fn read(addr: usize) -> u32 {
    // SAFETY: `addr` is one of UART0's registers above, always mapped on
    // this chip; a volatile read of it has no other effect than the
    // device's own (popping the receive FIFO for DR).
    unsafe { ptr::read_volatile(addr as *const u32) }
}

fn write(addr: usize, value: u32) {
    // SAFETY: as in `read`; only this driver touches UART0.
    unsafe { ptr::write_volatile(addr as *mut u32, value) }
}

/// UART0, owned by the one instance made at boot.
pub struct Uart {
    _private: (),
}

impl Uart {
    /// Configures UART0. Call once.
    pub fn take() -> Self {
        write(CR, 0);
        write(LCR_H, WLEN_8_FEN);
        write(CR, UARTEN_TXE_RXE);
        Uart { _private: () }
    }

    /// The next received byte, if any.
    pub fn read_byte(&mut self) -> Option<u8> {
        if read(FR) & RXFE != 0 {
            return None;
        }
        // The upper bits of DR are error flags; the byte is the low 8 bits.
        Some(read(DR) as u8)
    }

    /// Sends `bytes`, waiting for room in the transmit FIFO.
    pub fn write_all(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while read(FR) & TXFF != 0 {}
            write(DR, u32::from(b));
        }
    }
}
