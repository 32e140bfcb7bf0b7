-- What quoting needs of the customer 360: a product's VAT rate (basis points: 1300 = 13%) and
-- cost (minor units, for margin), and an account's grade (A–E: set by hand until the quarterly
-- evaluation writes it), which price books and service levels follow.
ALTER TABLE products ADD COLUMN tax_rate INTEGER NOT NULL DEFAULT 0 CHECK (tax_rate BETWEEN 0 AND 10000);
ALTER TABLE products ADD COLUMN cost INTEGER CHECK (cost >= 0);
ALTER TABLE accounts ADD COLUMN grade TEXT CHECK (grade IN ('A', 'B', 'C', 'D', 'E'));
