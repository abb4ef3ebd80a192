//! (landing with its issue)
