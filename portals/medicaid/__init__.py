"""Franklin Medicaid MMIS provider portal (key "medicaid"): WebForms-style pages, request/response claim
inquiry, proprietary 4-digit EOB codes resolved through the portal's own EOB Code Crosswalk."""
