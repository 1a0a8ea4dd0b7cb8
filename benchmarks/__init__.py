"""Side-by-side speed runs of cutmix against copy/clone and its peers (see RESULTS.md)."""
