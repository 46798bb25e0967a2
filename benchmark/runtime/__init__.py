"""Where code runs: device choice, precision and autocast, peak memory, distributed ranks, training building blocks.

Below features/, protocols/ and methods/, so every layer that trains or extracts reaches them without climbing.
"""
