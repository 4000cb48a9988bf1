"""paymux gateway: the merchant API, the plugin host and payment orchestration."""
