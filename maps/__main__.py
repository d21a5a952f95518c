"""``python -m maps install-assets [FOLDER]``: fetch Leaflet for offline maps (setup time)."""

import sys
from pathlib import Path

from maps.assets import install_assets

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "install-assets":
        sys.exit("usage: python -m maps install-assets [FOLDER]")
    print(f"map assets ready in {install_assets(Path(sys.argv[2]) if len(sys.argv) > 2 else None)}")
