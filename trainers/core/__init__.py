"""What every command shares: runtime, run folders, callbacks, distribution, export, flags."""
