"""podq.broker"""
