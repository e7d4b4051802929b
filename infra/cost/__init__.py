"""`parcours cost`: what a scenario costs in AWS, counted from its compiled ASL and priced from two data files
(prices.json: AWS list prices, their date and region; measured.json: the figures the bench measured)."""
