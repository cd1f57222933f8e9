"""Customers (CRM-1): people and companies who call, with their numbers, custom fields and history."""
