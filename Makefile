# Thin wrapper: the logic lives in scripts/ (set-up) and in tumorpde itself.
.PHONY: demo test setup clean

demo:  ## set up .venv if needed, then run the default case on 2 MPI ranks
	@bash scripts/dev.sh demo

test:  ## set up .venv if needed, then run the test suite serially and under mpiexec -n 2
	@bash scripts/dev.sh test

setup:
	@bash scripts/setup.sh

clean:
	rm -rf runs .pytest_cache
