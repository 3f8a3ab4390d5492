"""Where records come from: files and hub datasets read as rows, and the adapters that
turn rows into records.
"""
