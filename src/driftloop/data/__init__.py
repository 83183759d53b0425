"""Data as it comes: the contract a row must follow (``contract``), reading text into typed values
(``parse``), the check that splits a batch into valid and rejected rows with reasons
(``validate``), where batches come from (``sources``), a first contract drafted from a sample
(``draft``), and ground truth that arrives after the rows it labels (``truth``)."""
