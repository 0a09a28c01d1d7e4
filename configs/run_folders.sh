# Sourced by the scripts in configs/ that train (demo.sh, gpu-bench.sh, study-models.sh), not run.
# fresh_run DIR: make DIR ready for `sonomap train`, which refuses a folder that holds a run. A run
# folder a script made on an earlier run (marked) is cleared first; one it did not make is never
# deleted (train names it instead).
RUN_MARK=.made-by-this-script
fresh_run() {
  if [ -f "$1/$RUN_MARK" ]; then rm -rf "$1"; fi
  if [ ! -e "$1" ]; then mkdir -p "$1" && touch "$1/$RUN_MARK"; fi
}
