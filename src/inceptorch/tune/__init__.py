"""Recipe search: trials of ordinary training runs, chosen by Optuna's TPE sampler and stopped early by a pruner.

    space.py    what is searched, as data (the settings, their ranges, which depend on which)
    search.py   the study: storage in the output folder, trials, pruning, the time limit, parallel workers
    report.py   what a study leaves: the trials table, its pictures, and the best trial as a recipe
"""
