"""`python -m gateway.cli`, as the `paymux` entry point."""
import sys

from gateway.cli import main

sys.exit(main())
