"""podq.kubesim"""
