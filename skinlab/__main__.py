import sys

from skinlab.cli import main

sys.exit(main())
