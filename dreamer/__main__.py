import sys

from dreamer.cli import main

sys.exit(main())
