"""podq.shared"""
