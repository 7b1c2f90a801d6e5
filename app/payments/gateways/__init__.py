"""Payment gateways: one module per provider behind the interface in `base.py`."""
