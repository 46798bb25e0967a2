"""repbench-example: the template for third-party repbench plugins.

The hooks live in :mod:`repbench_example.plugin`.
"""

__version__ = "0.1.0"
