"""``python -m cryomine``: the same as the ``cryomine`` command."""

from cryomine.cli import main

main()
