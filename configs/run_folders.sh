# Sourced by the scripts in configs/ that train (demo.sh, gpu-bench.sh, study-models.sh), not run.
# fresh_run DIR: make DIR ready for `sonomap train`, which refuses a folder that holds a run. A run
# folder a script made on an earlier run (marked) is cleared first, but only when it holds nothing
# but what `sonomap train` writes there (training/run_setup.py: RUN_FILES, RUN_LOGS, and tb/): a
# report someone put in it (RUN/eval) stops the script instead, nothing deleted. A folder the
# script did not make is never deleted (train names it instead).
RUN_MARK=.made-by-this-script
RUN_OUTPUTS=" $RUN_MARK last.pt best.pt best.pt.yaml pretrained.pt metrics.csv summary.json tb "
fresh_run() {
  if [ -f "$1/$RUN_MARK" ]; then
    local entry name
    for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
      [ -e "$entry" ] || [ -L "$entry" ] || continue # an unmatched pattern stays as it is
      name=${entry##*/}
      case "$RUN_OUTPUTS" in
        *" $name "*) ;;
        *)
          echo "$1 holds $name, which sonomap train does not write: nothing deleted (move it, or give another folder)" >&2
          return 1
          ;;
      esac
    done
    rm -rf "$1"
  fi
  if [ ! -e "$1" ]; then mkdir -p "$1" && touch "$1/$RUN_MARK"; fi
}
