"""Training and fine-tuning FAN in NNabla, following ibug's recipe (hhj1897/fan_training):
losses (:mod:`.losses`), solvers and schedule (:mod:`.solvers`), the training graph
(:mod:`.graph`), resumable checkpoints (:mod:`.checkpoint`) and the loop (:mod:`.loop`). The
data pipeline is :mod:`.data`."""
