"""What several test modules share: worlds of each channel, the operator's commands, a funded merchant."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
