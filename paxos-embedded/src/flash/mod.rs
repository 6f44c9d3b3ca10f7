//! The replica's durable records on NOR flash (under way).
