#!/usr/bin/env bash
# The demo's measurement protocol (issue 13; numbers in benchmarks/demo.md, downstream.md, linking.md).
#
#   benchmarks/demo_protocol.sh dev  WORK [SEED...]   # build kg/corpus/data, train the preset and one
#                                                     # variant per option for every seed, score them
#                                                     # on DEV only (linking proxy; ChemProt / HoC
#                                                     # probe dev F1; the probe never embeds test)
#   benchmarks/demo_protocol.sh test WORK [SEED...]   # after freezing the preset in configs/demo.yaml:
#                                                     # train it per seed, score TEST once, BC5CDR, probe
#
# WORK holds everything (about 1 GB). Shared data (BC5CDR, MEDIC, BLURB) is read from $DATA
# (default ../shared/data). On the 2-core box one training is ~6-8 min and one full test evaluation
# ~4 min per model when the machine is otherwise idle: the dev phase over 3 seeds trains 18 models
# (about 2 h); give it one seed to explore, three before a decision.
set -euo pipefail

phase=${1:?dev or test}
work=${2:?work directory}
shift 2
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(29 7 11)
data=${DATA:-../shared/data}
python=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

stages() {  # the demo's kg, corpus and data stages, without its training and its test evaluation
  "$python" - "$work/demo" <<'EOF'
import sys
from bali.config import load_config
from bali.pipeline import stages
from bali.pipeline.run import Pipeline

pipeline = Pipeline(load_config("configs/demo.yaml", [f"out_dir={sys.argv[1]}"]))
for name in ("kg", "corpus", "data"):
    manifest = getattr(stages, f"run_{name}")(pipeline, True)
    print(name, {k: manifest["counts"].get(k) for k in ("heldout_synonyms", "sentences_dropped")})
EOF
}

trained=()  # the exports of the models trained (or found) so far, in order
train() {  # train NAME [--set KEY=VALUE ...]; skips a run that already has its export
  local name=$1
  shift
  trained+=("$work/exp/$name/final")
  [ -d "$work/exp/$name/final" ] && return 0
  "$python" -m bali train --config configs/demo.yaml --data "$work/demo/data" --out "$work/exp/$name" \
    --overwrite "$@"
}

[ -d "$work/demo/data" ] || stages
case "$phase" in
  dev)
    # Every option over every seed: one seed cannot check a 0.5-point downstream margin (ChemProt's
    # seed-to-seed spread is about a point; benchmarks/downstream.md). Compare means over seeds.
    for seed in "${seeds[@]}"; do
      train "seed$seed" --set "train.seed=$seed"  # the preset: reused by the test phase
      train "no_neighbour_negatives-s$seed" --set model.neighbour_negatives=false --set "train.seed=$seed"
      train "no_centering-s$seed" --set model.center_embeddings=false --set "train.seed=$seed"
      train "no_unigram-s$seed" --set model.mlm_bias_init=zeros --set "train.seed=$seed"
      train "alignment1.0-s$seed" --set model.alignment_weight=1.0 --set "train.seed=$seed"
      train "alignment0.1-s$seed" --set model.alignment_weight=0.1 --set "train.seed=$seed"
    done
    "$python" benchmarks/demo_ablation.py --kg "$work/demo/kg" --corpus "$work/demo/corpus" "${trained[@]}"
    # Downstream on dev too (--split dev: the probe fits on train, scores dev, never embeds test)
    "$python" benchmarks/downstream.py --data "$data" --out "$work/probe-dev" --cache "$work/probe-cache" \
      --tasks chemprot hoc --split dev builtin "${trained[@]}"
    ;;
  test)
    for seed in "${seeds[@]}"; do
      train "seed$seed" --set "train.seed=$seed"
    done
    models=()
    for final in "${trained[@]}"; do
      models+=(--model "$final")
    done
    "$python" -m bali eval linking --model builtin "${models[@]}" --kg "$work/demo/kg" --format heldout \
      --split test --out "$work/test" --overwrite
    "$python" -m bali eval linking --model builtin --model "${trained[0]}" \
      --dictionary "$data/medic/medic_06Jul2012.txt" --mentions "$data/bc5cdr/CDR_TestSet.PubTator.txt" \
      --format pubtator --entity-type Disease --out "$work/bc5cdr" --overwrite
    # The tasks where the probe beats its input-blind baselines, every seed (downstream.md)
    "$python" benchmarks/downstream.py --data "$data" --out "$work/probe" --cache "$work/probe-cache" \
      --tasks chemprot hoc biosses builtin "${trained[@]}"
    ;;
  *)
    echo "unknown phase '$phase' (dev or test)" >&2
    exit 2
    ;;
esac
