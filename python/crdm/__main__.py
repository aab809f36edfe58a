"""``python -m crdm``: the same as the ``crdm`` command."""

if __name__ == "__main__":
    from crdm.cli import main

    raise SystemExit(main())
