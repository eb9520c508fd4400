"""The gateway's wire protocol, free of sockets: parse and build what crosses the wire."""
