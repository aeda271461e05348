"""podq.watcher"""
