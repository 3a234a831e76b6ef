"""`python -m bench`: every benchmark, then the report."""

from bench.run_all import main

main()
