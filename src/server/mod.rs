//! A node: consensus + store + storage wired onto a runtime shard, the client port, admin HTTP.
pub mod protocol;
