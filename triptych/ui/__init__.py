"""Streamlit pages and shared widgets."""
