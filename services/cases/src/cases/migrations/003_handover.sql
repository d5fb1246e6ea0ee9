-- A young person turned 27 (ServiceLineHandoverDue): their open JMD case shows it until the case
-- manager decides (transfer, open an MBE case, close).
ALTER TABLE cases ADD COLUMN handover_due_on date;
