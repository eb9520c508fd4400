"""Pictures and video made from stored frames: an event's snapshot (its box drawn, or
cropped) and its clip (H.264 in MP4). Pure: bytes in, bytes out, no sockets, no brokers."""
