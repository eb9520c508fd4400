"""`vae cameras`: real cameras (RTSP, MJPEG over HTTP, video files, V4L2) pushed to the gateway."""
