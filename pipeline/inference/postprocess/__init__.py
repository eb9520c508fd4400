"""Post-processing: raw model output -> Detections."""
