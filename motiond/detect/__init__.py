"""Detection (pure): differencing, regions, nuisance areas, tampering, day/night, the trigger."""
