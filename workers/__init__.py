"""podq.workers"""
