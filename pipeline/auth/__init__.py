"""Who may do what: signed tokens (JWT), their scopes, and which scope each endpoint needs.

Pure: no sockets, no files. The gateway asks ``policy.decide``; `vae token issue` mints.
"""
