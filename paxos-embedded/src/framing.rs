//! Messages over a byte stream (under way).
