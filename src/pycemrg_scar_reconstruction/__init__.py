"""Per-patient 3D myocardial scar reconstruction."""
__version__ = "0.1.0"
