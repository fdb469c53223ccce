"""The local stack: moto made as strict as AWS, the providers' emulator, the queue poller, the demo.

The function's code root (``functions/cleanup``) is put on the import path here, as Lambda puts the
deployment package there; its modules are imported only once the function's environment is in place.
"""

import sys
from pathlib import Path

FUNCTION_CODE_ROOT = Path(__file__).resolve().parent.parent / "functions" / "cleanup"
if str(FUNCTION_CODE_ROOT) not in sys.path:
    sys.path.insert(0, str(FUNCTION_CODE_ROOT))
