"""Sinks: the analytics' events and counts out to PostgreSQL, MQTT and webhooks.

One base (``base.SinkRunner``): a consumer group over ``vae.events`` and ``vae.counts``
(optionally ``vae.detections``) that commits a batch's offsets only once its destination
holds it; each destination writes by key, so a restarted sink leaves every record once.
"""
