  PAW_PBE S 06Sep2000
 6.00000000000000000
 parameters from PSCTR are:
   VRHFIN =S: 3s3p
   LEXCH  = PE
   TITEL  = PAW_PBE S 06Sep2000
   POMASS =   32.066; ZVAL   =    6.000    mass and valenz
   ENMAX  =  260.000; ENMIN  =  195.000 eV
 END of PSCTR-controll parameters
 local part
 0.0 1.0 2.0
 End of Dataset
