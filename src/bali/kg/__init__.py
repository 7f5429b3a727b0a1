"""Knowledge-graph stage: turn UMLS, OBO ontologies or TSV graphs into the KG artefact."""
